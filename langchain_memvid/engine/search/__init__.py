"""Finding records: vectors and their files, the FAISS index and its life, filters, record ids."""
