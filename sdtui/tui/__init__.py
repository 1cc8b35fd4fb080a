"""The Textual app. Importing this package loads neither torch nor diffusers."""
