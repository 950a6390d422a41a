"""One router per resource; `hub.web.application` mounts them."""
