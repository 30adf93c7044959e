"""``herald serve``: the web service for provider webhooks, unsubscribe and confirmation pages.

It never writes the warehouse directly in embedded mode: everything it hears is handed to the
landing sink (:mod:`herald.events.landing`), which a sensor loads into ``herald_raw``.
"""
