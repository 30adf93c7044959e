"""The portal under ``/app``: accounts, roles and 2FA (:mod:`.accounts`), the audit of what its
users read and do (:mod:`.audit`), the dashboard's figures (:mod:`.dashboard`), the read path that
never waits behind a run on the embedded warehouse (:mod:`.reads`), and the packets and contacts
its pages show (:mod:`.packets`, :mod:`.contacts`). The web side is :mod:`herald.web.portal`."""
