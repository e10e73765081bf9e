//! The collector's LMDB store (heed).
