"""What the tests share: local servers, object-store emulators, sample feeds and paths."""
