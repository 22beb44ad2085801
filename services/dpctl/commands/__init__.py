"""dpctl's command groups: each module adds its subparsers and the functions that run them."""
