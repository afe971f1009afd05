"""Model registry, preprocessing, classifier and CAMs. TensorFlow is imported lazily."""
