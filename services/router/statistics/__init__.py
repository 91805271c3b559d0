"""Statistics for managers: figures per Stockholm day or ISO week, their exports and
charts."""
