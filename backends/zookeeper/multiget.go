package zookeeper

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/reconf/reconf/backends"
)

// Batch sizes of getMulti: reads per multiRead, and children expected per multiRead of
// getChildren (a reply of about 100 bytes a read).
const (
	dataBatch     = 1000
	childrenBatch = 20000
)

// getMulti reads the subtrees of roots level by level over one wire session: the data of
// every node of a level in multiReads of dataBatch, then the children of the nodes that have
// some. The result is the same as that of the walk with one request per node.
func (c *Client) getMulti(ctx context.Context, roots []string) (map[string]string, error) {
	wc, reused, err := c.takeWire(ctx)
	if err != nil {
		return nil, err
	}
	out, err := c.readTree(ctx, wc, roots)
	if errors.Is(err, errSilent) {
		c.silent.add(wc.node)
	}
	if (reused || errors.Is(err, errSilent)) && errors.Is(err, errLost) && ctx.Err() == nil {
		// The kept session went away between Gets (a restarted server), or the server
		// stopped answering (frozen): dial at once, another server first.
		wc.close()
		if wc, err = dialWire(ctx, c.cfg, &c.silent); err != nil {
			return nil, err
		}
		out, err = c.readTree(ctx, wc, roots)
	}
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("zookeeper %s: get: %w: %w", wc.node, backends.ErrUnavailable, ctx.Err())
	}
	c.putWire(wc)
	return out, err
}

type folder struct {
	path string
	kids int
}

func (c *Client) readTree(ctx context.Context, wc *wireConn, nodes []string) (map[string]string, error) {
	out := make(map[string]string)
	var kv []byte
	for len(nodes) > 0 {
		var batches [][]readOp
		for i := 0; i < len(nodes); i += dataBatch {
			ops := make([]readOp, 0, min(dataBatch, len(nodes)-i))
			for _, p := range nodes[i:min(i+dataBatch, len(nodes))] {
				ops = append(ops, readOp{path: p})
			}
			batches = append(batches, ops)
		}
		var folders []folder
		err := wc.multiRead(ctx, batches, func(bi int, body []byte) error {
			return eachResult(body, batches[bi], func(op readOp, code int32, res []byte) error {
				if err := zkErr(code); errors.Is(err, zk.ErrNoNode) {
					return nil
				} else if err != nil {
					return c.wrapNode(wc.node, "get", op.path, err)
				}
				data, stat, err := dataResult(res)
				if err != nil {
					return fmt.Errorf("zookeeper %s: get %s: %w: %w", wc.node, op.path, backends.ErrUnavailable, err)
				}
				kids := int(binary.BigEndian.Uint32(stat[56:]))
				if kids == 0 || len(data) > 0 {
					out[op.path] = string(data)
				}
				if kids > 0 {
					folders = append(folders, folder{op.path, kids})
				}
				return nil
			})
		})
		if err != nil {
			return nil, err
		}
		batches = batches[:0]
		for n, i := 0, 0; i < len(folders); i++ {
			if len(batches) == 0 || n >= childrenBatch || len(batches[len(batches)-1]) >= dataBatch {
				batches, n = append(batches, nil), 0
			}
			batches[len(batches)-1] = append(batches[len(batches)-1], readOp{children: true, path: folders[i].path})
			n += folders[i].kids
		}
		nodes = nodes[:0:0]
		err = wc.multiRead(ctx, batches, func(bi int, body []byte) error {
			return eachResult(body, batches[bi], func(op readOp, code int32, res []byte) error {
				if err := zkErr(code); errors.Is(err, zk.ErrNoNode) {
					return nil
				} else if err != nil {
					return c.wrapNode(wc.node, "children", op.path, err)
				}
				_, err := eachName(res, func(name []byte) {
					if op.path == "/" {
						if string(name) != "zookeeper" {
							nodes = append(nodes, "/"+string(name))
						}
						return
					}
					kv = append(append(append(kv[:0], op.path...), '/'), name...)
					nodes = append(nodes, string(kv))
				})
				return err
			})
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// eachResult walks a multiRead reply: for each op, its error code and the bytes of its
// result (which start with the result and run to the end of the reply).
func eachResult(body []byte, ops []readOp, f func(op readOp, code int32, res []byte) error) error {
	for i := 0; ; i++ {
		if len(body) < 9 {
			return fmt.Errorf("%w: short multi reply", errLost)
		}
		typ, done, code := int32(binary.BigEndian.Uint32(body)), body[4] != 0, int32(binary.BigEndian.Uint32(body[5:]))
		body = body[9:]
		if done {
			if i != len(ops) {
				return fmt.Errorf("%w: %d results for %d reads", errLost, i, len(ops))
			}
			return nil
		}
		if i >= len(ops) {
			return fmt.Errorf("%w: more results than reads", errLost)
		}
		var n int
		var err error
		switch typ {
		case -1: // ErrorResult: err
			if len(body) < 4 {
				return fmt.Errorf("%w: short error result", errLost)
			}
			code, n = int32(binary.BigEndian.Uint32(body)), 4
		case opGetData:
			n, err = dataLen(body)
		case opGetChildren:
			n, err = namesLen(body)
		default:
			err = fmt.Errorf("%w: result of type %d", errLost, typ)
		}
		if err != nil {
			return err
		}
		if err := f(ops[i], code, body[:n]); err != nil {
			return err
		}
		body = body[n:]
	}
}

// dataLen is the length of a GetDataResponse (data, stat) at the start of b.
func dataLen(b []byte) (int, error) {
	if len(b) < 4 {
		return 0, fmt.Errorf("%w: short data result", errLost)
	}
	n := int(int32(binary.BigEndian.Uint32(b)))
	n = max(n, 0) // -1: no data
	if len(b) < 4+n+statLen {
		return 0, fmt.Errorf("%w: short data result", errLost)
	}
	return 4 + n + statLen, nil
}

func dataResult(b []byte) (data, stat []byte, err error) {
	n, err := dataLen(b)
	if err != nil {
		return nil, nil, err
	}
	return b[4 : n-statLen], b[n-statLen : n], nil
}

// namesLen is the length of a GetChildrenResponse (a vector of strings) at the start of b.
func namesLen(b []byte) (int, error) {
	return eachName(b, nil)
}

// eachName calls f (if not nil) with each name of the vector of strings at the start of b,
// and returns the vector's length.
func eachName(b []byte, f func(name []byte)) (int, error) {
	short := fmt.Errorf("%w: short children result", errLost)
	if len(b) < 4 {
		return 0, short
	}
	count, off := int(int32(binary.BigEndian.Uint32(b))), 4
	for range max(count, 0) {
		if len(b) < off+4 {
			return 0, short
		}
		n := int(int32(binary.BigEndian.Uint32(b[off:])))
		if n < 0 || len(b) < off+4+n {
			return 0, short
		}
		if f != nil {
			f(b[off+4 : off+4+n])
		}
		off += 4 + n
	}
	return off, nil
}

// takeWire returns the cached wire session if it is fresh (reused), or dials a new one.
func (c *Client) takeWire(ctx context.Context) (wc *wireConn, reused bool, err error) {
	c.wireMu.Lock()
	wc, c.wire = c.wire, nil
	c.wireMu.Unlock()
	if wc != nil {
		// Unused for a third of the session timeout, it may be about to expire: no pings are
		// sent between Gets. On a server that a session's watchdog found silent lately
		// (frozen), it would hold the Get for wireSilence.
		if !wc.broken.Load() && time.Since(wc.lastUsed) < wc.timeout/3 && !c.silent.recent(wc.node) &&
			!c.silent.recent(wc.nc.RemoteAddr().String()) {
			return wc, true, nil
		}
		wc.close()
	}
	wc, err = dialWire(ctx, c.cfg, &c.silent)
	return wc, false, err
}

// putWire caches wc for the next Get, or closes it.
func (c *Client) putWire(wc *wireConn) {
	c.wireMu.Lock()
	if !wc.broken.Load() && c.wire == nil && !c.closed {
		c.wire, wc = wc, nil
	}
	c.wireMu.Unlock()
	if wc != nil {
		wc.close()
	}
}

// wrapNode is wrap for a server known by its address.
func (c *Client) wrapNode(node, op, path string, err error) error {
	kind := backends.ErrUnavailable
	if errors.Is(err, zk.ErrNoAuth) || errors.Is(err, zk.ErrAuthFailed) {
		kind = backends.ErrAuth
	}
	return fmt.Errorf("zookeeper %s: %s %s: %w: %w", node, op, path, kind, err)
}
