//! Integration tests of kura-kanon on synthetic medical data: a property test over several k,
//! an independent check with Python's pycanon, and a (manual) 1M-row timing.

mod property;
mod pycanon;
mod synthetic;
mod timing;
