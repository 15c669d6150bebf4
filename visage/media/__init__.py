"""Media in and out: images now; video, streams, tracking and blurring later."""
