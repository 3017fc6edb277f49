"""Tracking and registry stores (``hokusai+<db>://`` schemes): not built yet, see issue 5."""
