"""
Sans-IO readers and writers for the media and GPS files that devices
stream and monitors save, and server-side location checks.

Readers take a binary file object and yield L{mrs.media.sample.Sample}s
(video, audio) or L{mrs.media.nmea.Fix}es / L{mrs.media.gpx.GpxPoint}s
(location).  Writers are sans-IO: C{write(...)} and C{finish()} return the
bytes to send.  Nothing here imports Twisted.
"""
