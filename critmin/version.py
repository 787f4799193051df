"""critmin's version, in a module of its own so the engine can name it without importing the
package's public API (which imports the analysis layer)."""

__version__ = "0.1.0"
