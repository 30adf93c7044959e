"""Two-way messaging: manual replies (``herald reply``) and the after-hours auto-responder."""
