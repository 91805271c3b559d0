"""Security suite (marker ``security``): authentication of source systems and hostile input."""
