"""MuJoCo benchmark sweeps over soar train (``soar bench``) and their statistics (``soar report``)."""
