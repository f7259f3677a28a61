//! Config objects as TF IFMap XML (node/link/metadata) and back, driven by the schema metadata.
