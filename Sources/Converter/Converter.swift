// Converter module.
