//! The deployment's certificate authority, built on rcgen.
