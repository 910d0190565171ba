"""The image store: files with their recipes, an SQLite index over them, export. No Qt here.

Files are the truth: every image carries its parameters (an AUTOMATIC1111 ``parameters`` text and
this app's exact JSON recipe), and the index in the user data folder can always be rebuilt from
them.
"""
