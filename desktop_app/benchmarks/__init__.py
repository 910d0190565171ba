"""``diffuse-studio bench``: the engine against plain diffusers, the window, the gallery. Measuring
code lives here, above the product's packages, which never import it."""
