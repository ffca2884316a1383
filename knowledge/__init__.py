"""Knowledge: playbooks, their embeddings and the vector search that matches a message to them."""
