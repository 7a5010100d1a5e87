"""
The HTTPS admin web UI, its JSON API and the metrics endpoint; see
L{mrs.admin.app.AdminApp}.
"""

from mrs.admin.app import AdminApp

__all__ = ["AdminApp"]
