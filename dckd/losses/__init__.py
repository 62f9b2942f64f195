"""Loss terms as pure functions of tensors; weights live in the method configs (``dckd.config.schema``)."""
