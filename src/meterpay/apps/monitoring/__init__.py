"""Room monitoring: every room's money, fee status, link and supply at a glance (the room grid),
and one room's whole state (the room page and the room state API).

Reads only: the operations on a room go through the services of the apps that own them.
"""
