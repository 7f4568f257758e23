//! Response writer (in progress).
