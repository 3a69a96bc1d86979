"""The local cloud: moto server + template.yaml deployed onto it + a local Lambda service."""
