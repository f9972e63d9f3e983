package store

// syncDir is a no-op on Windows, where NTFS makes directory entries durable
// with the file and directories cannot be synced.
func syncDir(string) error { return nil }
