"""The portal under ``/app``: accounts, roles and 2FA (:mod:`.accounts`), the audit of what its
users read and do (:mod:`.audit`), the dashboard's figures (:mod:`.dashboard`). The web side is
:mod:`herald.web.portal`."""
