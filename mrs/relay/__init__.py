"""
The relay: the hub that routes media between devices and monitors, and the
bounded outbound queue of each monitor.
"""
