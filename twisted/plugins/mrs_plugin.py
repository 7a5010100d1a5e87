"""
The C{twistd mrs} plugin.  It only names the module that builds the
service, so Twisted's plugin scan imports nothing else of the package.
"""

from twisted.application.service import ServiceMaker

mrs = ServiceMaker(
    "MRS media relay server",
    "mrs.tap",
    "Relay live video, audio and GPS from capture devices to permitted monitors.",
    "mrs",
)
