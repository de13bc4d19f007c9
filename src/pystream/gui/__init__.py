"""Qt widgets. Thin: they show what the engine prepared and forward the user's intent."""
