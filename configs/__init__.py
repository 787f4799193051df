"""Hydra configuration groups: scenario/, policy/, shock/, experiment/."""
