"""Backends: what runs a recipe. ``protocol`` is all a front end sees; ``local`` runs the engine on
this machine (the only package that imports torch and diffusers), ``fake`` is a scripted stand-in
for fast window tests."""
