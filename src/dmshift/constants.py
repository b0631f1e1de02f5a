"""Named constants shared across dmshift."""

#: Label given to a point that no cluster is confident about.
NOISE: int = -1

#: Value of a partial label meaning "no side information for this point".
UNLABELLED: int = -1
