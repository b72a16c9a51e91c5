"""Reading uploaded metric files: streaming readers, per-batch validation, the spool."""
