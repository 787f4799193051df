"""The crisis exercise (``critmin exercise``): a controller that owns its model and timeline
(:mod:`critmin.exercise.controller`, :mod:`critmin.exercise.timeline`), the Solara web app
(:mod:`critmin.exercise.app`) and its server (:mod:`critmin.exercise.server`). docs/exercise.md."""
