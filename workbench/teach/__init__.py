"""Teaching modules: small from-scratch versions of mechanisms that `workbench` otherwise reads from real models.

Here: `attention_scoring` (dot, scaled dot, additive, general and cosine attention scores, trained side by side).
"""
