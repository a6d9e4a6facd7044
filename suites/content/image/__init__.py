"""Image product of the content suite: class-conditional diffusion on the user's images."""
