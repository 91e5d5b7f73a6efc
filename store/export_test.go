package store

import "context"

// WriteSynchronous is PRAGMA synchronous on the write connection: 2 is FULL, 1 NORMAL.
func WriteSynchronous(ctx context.Context, s *Store) (int, error) {
	var v int
	err := s.write.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&v)
	return v, err
}
