"""Controllers: pure functions of the process image, their own state and the time."""
