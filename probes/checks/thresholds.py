"""Every threshold a detector uses, in one place, each with the reason for its value."""
