"""
MRS, the Media Relay System server.

Capture devices publish video, audio and location to this server, which
relays them to the monitors that the permission rules allow.
"""

__version__ = "0.1.0"
