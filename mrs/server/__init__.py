"""
Client sessions over TCP and TLS: the session protocol, the role objects it
hands over to after login, authentication, and the services that listen.
"""
