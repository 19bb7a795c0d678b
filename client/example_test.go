package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"slices"
	"strings"
	"time"

	"github.com/cairnkv/cairn/client"
)

// Connect, write and read back. The read's context goes with the write, so
// the write replaces what was there instead of adding a sibling.
func Example() {
	ctx := context.Background()
	c, err := client.New(ctx, client.Config{Seeds: exampleSeeds()})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	key := []byte("ada")
	cur, err := c.Get(ctx, "users", key)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Put(ctx, "users", key, []byte("Ada Lovelace"), client.Causal(cur.Context), client.W(client.Majority)); err != nil {
		log.Fatal(err)
	}
	obj, err := c.Get(ctx, "users", key, client.R(client.Majority))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(obj.Found, string(obj.Value), len(obj.Siblings))
	// Output: true Ada Lovelace 1
}

// Two writers read the same version and both write with its context: cairn
// keeps both writes, as siblings. A writer that reads both and writes the
// merge with their context collapses them into one value.
func Example_siblings() {
	ctx := context.Background()
	c, err := client.New(ctx, client.Config{Seeds: exampleSeeds()})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	key := []byte("cart")
	seen, err := c.Get(ctx, "shop", key)
	if err != nil {
		log.Fatal(err)
	}
	for _, item := range []string{"apples", "pears"} {
		if _, err := c.Put(ctx, "shop", key, []byte(item), client.Causal(seen.Context)); err != nil {
			log.Fatal(err)
		}
	}

	obj, err := c.Get(ctx, "shop", key)
	if err != nil {
		log.Fatal(err)
	}
	var items []string
	for _, s := range obj.Siblings {
		items = append(items, string(s.Value))
	}
	slices.Sort(items)
	fmt.Println(obj.Conflict(), items)

	merged := strings.Join(items, ",")
	if _, err := c.Put(ctx, "shop", key, []byte(merged), client.Causal(obj.Context)); err != nil {
		log.Fatal(err)
	}
	obj, err = c.Get(ctx, "shop", key)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(obj.Conflict(), string(obj.Value))
	// Output:
	// true [apples pears]
	// false apples,pears
}

// A counter that concurrent writers can increment without losing an
// increment: each writer counts its own increments, and the resolver keeps
// each writer's largest count. Update reads, resolves, applies the function
// and writes back with the read's context.
func ExampleClient_Update() {
	ctx := context.Background()
	merge := func(siblings []client.Sibling) ([]byte, error) {
		merged := map[string]int{}
		for _, s := range siblings {
			var counts map[string]int
			if err := json.Unmarshal(s.Value, &counts); err != nil {
				return nil, err
			}
			for writer, n := range counts {
				merged[writer] = max(merged[writer], n)
			}
		}
		return json.Marshal(merged)
	}
	c, err := client.New(ctx, client.Config{Seeds: exampleSeeds(), Resolver: merge})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	key := []byte("page-views")
	increment := func(writer string) client.UpdateFunc {
		return func(cur *client.Object) ([]byte, error) {
			counts := map[string]int{}
			if cur.Found {
				if err := json.Unmarshal(cur.Value, &counts); err != nil {
					return nil, err
				}
			}
			counts[writer]++
			return json.Marshal(counts)
		}
	}
	// Start from zero, replacing whatever an earlier run left.
	cur, err := c.Get(ctx, "stats", key)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Put(ctx, "stats", key, []byte("{}"), client.Causal(cur.Context)); err != nil {
		log.Fatal(err)
	}

	for _, writer := range []string{"web-1", "web-2", "web-1"} {
		if _, err := c.Update(ctx, "stats", key, increment(writer)); err != nil {
			log.Fatal(err)
		}
	}
	obj, err := c.Get(ctx, "stats", key)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(obj.Value))
	// Output: {"web-1":2,"web-2":1}
}

// Errors are cairn's sentinels, whichever side found the problem.
func Example_errors() {
	ctx := context.Background()
	c, err := client.New(ctx, client.Config{Seeds: exampleSeeds()})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	_, err = c.Get(ctx, "users", []byte("ada"), client.R(17))
	fmt.Println(errors.Is(err, client.ErrInvalidArgument))

	expired, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel()
	_, err = c.Get(expired, "users", []byte("ada"))
	fmt.Println(errors.Is(err, client.ErrTimeout))

	// A quorum error carries its counts.
	var qe *client.QuorumError
	if _, err := c.Put(ctx, "users", []byte("ada"), []byte("x"), client.W(client.All)); errors.As(err, &qe) {
		fmt.Printf("%s needed %s=%d, got %d\n", qe.Op, qe.Kind, qe.Need, qe.Got)
	}
	// Output:
	// true
	// true
}

func ExampleLastWriteWins() {
	now := time.Now()
	v, _ := client.LastWriteWins([]client.Sibling{
		{Value: []byte("old"), WrittenAt: now.Add(-time.Minute)},
		{Value: []byte("new"), WrittenAt: now},
	})
	fmt.Println(string(v))
	// Output: new
}
