"""Tools the agent can call. One module per family; ``registry`` maps names to classes and
imports a family only when one of its tools is used."""
