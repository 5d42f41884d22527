"""Pure logic of the HX gateway deploy: no pyinfra imports, unit-testable."""
