// GlideModel module.
