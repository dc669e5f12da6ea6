// Runs's clients see Basics (the RNG, JSON text, atomic files, spelling) through this import, so
// moving those helpers into their own leaf target changed no import elsewhere.
@_exported import Basics
