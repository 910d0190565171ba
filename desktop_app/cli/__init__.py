"""The entry points: the command line and the window's start, and the composition root that picks
the backend (this machine's engine, or a server) and hands it to the front end."""
