"""``make run``: the whole stack on one machine (``python -m stack``)."""
